#!/usr/bin/env bash
# Fails when a relative link in the project's Markdown (README.md, the
# other top-level *.md files, docs/*.md) points at a file that does not
# exist, or at an anchor that no heading of the target file makes.
# Anchors are made as GitHub makes them: the heading's text in lower case,
# inline code and link syntax dropped, every character other than a
# letter, digit, space, `-` or `_` removed, spaces turned into `-`, and
# `-1`, `-2`, ... after a repeated one. Links with a scheme (https:,
# mailto:) are not followed. Fenced code blocks and code spans are
# skipped. perl is in every Debian (perl-base); nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(*.md docs/*.md)
perl -CSD -Mutf8 -e '
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;

my %anchors;    # file => { anchor => 1 }

sub slurp {
    my ($path) = @_;
    open my $fh, "<:encoding(UTF-8)", $path or return undef;
    local $/;
    my $text = <$fh>;
    return $text;
}

# The text outside fenced code blocks.
sub prose {
    my ($text) = @_;
    my ($out, $fence) = ("", undef);
    for my $line (split /\n/, $text, -1) {
        if (defined $fence) {
            $fence = undef if $line =~ /^\s*\Q$fence\E\s*$/;
            $out .= "\n";
            next;
        }
        if ($line =~ /^\s*(```+|~~~+)/) {
            $fence = $1;
            $out .= "\n";
            next;
        }
        $out .= "$line\n";
    }
    return $out;
}

sub anchors_of {
    my ($path) = @_;
    return $anchors{$path} if $anchors{$path};
    my %seen;
    my %set;
    my $text = slurp($path) // "";
    for my $line (split /\n/, prose($text)) {
        next unless $line =~ /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/;
        my $h = $1;
        $h =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;    # [text](url) -> text
        $h =~ s/`//g;
        $h = lc $h;
        $h =~ s/[^\w\- ]//g;
        $h =~ s/ /-/g;
        my $a = $h;
        $a .= "-" . $seen{$h} if $seen{$h};
        $seen{$h}++;
        $set{$a} = 1;
    }
    return $anchors{$path} = \%set;
}

my $bad = 0;
my $count = 0;
for my $file (@ARGV) {
    my $text = prose(slurp($file) // die "cannot read $file\n");
    $text =~ s/`[^`]*`//g;    # code spans
    while ($text =~ /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g) {
        my $target = $1;
        next if $target =~ /^[a-zA-Z][a-zA-Z0-9+.-]*:/;    # https:, mailto:
        $count++;
        my ($path, $anchor) = split /#/, $target, 2;
        my $resolved = $path eq ""
            ? $file
            : File::Spec->canonpath(File::Spec->catfile(dirname($file), $path));
        if (!-e $resolved) {
            print STDERR "$file: $target: no file $resolved\n";
            $bad++;
            next;
        }
        next unless defined $anchor && $anchor ne "";
        if ($resolved !~ /\.md$/) {
            next;    # an anchor into a non-Markdown file is not checked
        }
        if (!anchors_of($resolved)->{$anchor}) {
            print STDERR "$file: $target: no heading makes #$anchor in $resolved\n";
            $bad++;
        }
    }
}
if ($bad) {
    print STDERR "$bad broken Markdown link(s)\n";
    exit 1;
}
print "Markdown links: $count relative links resolve\n";
' "${files[@]}"
