#!/usr/bin/env python3
"""Independent computation of SECURITY.md's known-answer vectors.

Written from DESIGN.md/SECURITY.md and the C2SP XAES-256-GCM spec with the
`cryptography` package (HKDF-SHA256, AES-256 block, AES-256-GCM), sharing no
code with the Rust crate. `cargo test` pins the same value from the Rust side.
Run: python3 scripts/kat.py
"""
import base64
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def hkdf(master, label, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=label).derive(master)


def aes_block(key, block):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def xaes_seal(key, nonce, plaintext, aad):
    # C2SP XAES-256-GCM: L = AES(K, 0^128); K1 = L << 1 (xor 0x87 on carry)
    l = int.from_bytes(aes_block(key, bytes(16)), "big")
    k1 = (l << 1) & ((1 << 128) - 1)
    if l >> 127:
        k1 ^= 0x87
    k1 = k1.to_bytes(16, "big")
    m1 = b"\x00\x01X\x00" + nonce[:12]
    m2 = b"\x00\x02X\x00" + nonce[:12]
    kx = aes_block(key, bytes(a ^ b for a, b in zip(m1, k1))) + aes_block(
        key, bytes(a ^ b for a, b in zip(m2, k1))
    )
    return AESGCM(kx).encrypt(nonce[12:], plaintext, aad)


master = bytes(range(32))
key_id = hkdf(master, b"sealed-session v1 key id", 4)
subkey = hkdf(master, b"sealed-session v1 cookie seal", 32)
nonce = bytes(0xA0 + i for i in range(24))
name = b"__Host-session"
plaintext = bytes([0x11] * 16) + bytes.fromhex("80e2cfaa06" "ace4cfaa06" "00012a")
print("key id:", key_id.hex())
# Without an application context (the default), then with one: the
# context follows the cookie name after a 0x00 byte.
for label, context in [("value:", b""), ("value with context 'shop production':", b"shop production")]:
    binding = name + (b"\x00" + context if context else b"")
    aad = b"sealed-session cookie v1" + b"\x01" + key_id + binding
    raw = b"\x01" + key_id + nonce + xaes_seal(subkey, nonce, plaintext, aad)
    print(label, base64.urlsafe_b64encode(raw).rstrip(b"=").decode())

# Wire format version 2: the version byte (bound into the AAD) is 2; the
# envelope adds the session's lifetime after `issued` (persistence code 1 =
# persistent, idle 2_592_000 s as a varint, absolute 0 = as configured), and
# the inline value starts with its schema version (3) before postcard's 42.
def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


v2_plaintext = (
    bytes([0x11] * 16)
    + varint(1_700_000_000)
    + varint(1_700_000_300)
    + varint(1) + varint(2_592_000) + varint(0)
    + b"\x00" + varint(2) + varint(3) + b"\x2a"
)
aad = b"sealed-session cookie v1" + b"\x02" + key_id + name
raw = b"\x02" + key_id + nonce + xaes_seal(subkey, nonce, v2_plaintext, aad)
print("version 2 value:", base64.urlsafe_b64encode(raw).rstrip(b"=").decode())

# Self-check against the C2SP spec's first vector.
assert xaes_seal(b"\x01" * 32, b"ABCDEFGHIJKLMNOPQRSTUVWX", b"XAES-256-GCM", b"").hex() == \
    "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"
