#!/usr/bin/env python3
"""Randomized differential test: generated text and meta command streams to memcached 1.6.18
and to the server; replies must match.

Each seed drives a generator (random.Random(seed)) that writes a sequence of commands over six
keys, so that they interact: set/add/replace/append/prepend/cas, get/gets/gat/gats, touch,
delete, incr/decr, and the meta commands mg/ms/md/ma/mn/me, with valid flags and with
near-valid input (bad and overflowing numbers, negative or huge exptimes, data blocks of the
wrong length, missing and extra tokens, duplicate and invalid meta flags, base64 keys, opaque
tokens, noreply, keys of 250 and 251 bytes, ms modes, ma's N/J/D/M). Nothing depends on the
clock passing (expiry.py tests that): no flush_all, no exptime that expires a second later.

A seed runs as one differential.py case: each step is a command (now and then two or three
pipelined), sent with the sentinel "mn\\r\\n", on a fresh connection to each server with its own
key prefix, and the two reply streams are compared after differential.py's normalisation (CAS
values, STAT, VERSION, ME). Both servers start with differential.py's SERVER_ARGS. A
mismatching seed is shrunk: the commands after the first mismatching step are dropped, then
single commands while it still mismatches; the seed, the minimal sequence and both servers'
replies to it are printed.

Left out on purpose, as the differences docs/server.md lists ("Protocol coverage"): an opaque
token over 32 bytes on mg/ma; a key over 250 bytes after another key of a get line, or in a
get line after another command of the same step; values of blanks only (memcached's incr reads past them); incr/decr/ma after
another command of the same step (memcached's unwritten reply then holds the item, and it
increments into a new item); ms I with a CAS value of another key (cinch's CAS values are not
ordered across keys as memcached's: docs/item-format.md).

  --seeds N     how many seeds (from --first); the default fits in about 30 s on a loaded CI box
  --seed S      replays one seed, printing every step with both replies
"""

import random
import time

import differential
import harness

KEYS = [b"{k}%d" % i for i in range(6)]

# Tokens where a number goes: ordinary values, the edges of 32 and 64 bits, and near-numbers.
NUMBERS = [b"0", b"1", b"5", b"42", b"100", b"1000", b"-1", b"-0", b"+5", b"007", b"abc", b"1.5",
           b"0x10", b"4294967295", b"4294967296", b"2147483647", b"2147483648", b"-2147483648",
           b"-2147483649", b"18446744073709551615", b"18446744073709551616",
           b"99999999999999999999", b"-99999999999", b"9" * 40]
# Exptimes that do not expire while a seed runs: never, far away, already expired (negative, or
# an absolute time in 1970), or malformed.
EXPTIMES = [b"0", b"0", b"0", b"100", b"1000", b"2592000", b"2592001", b"4294967295", b"-1",
            b"-100", b"4294967296", b"18446744073709551615", b"abc", b"+5", b"1.5"]
# Most meta numbers are ordinary ones, so that most requests do their work.
ORDINARY = {b"T": [b"0", b"100", b"1000"], b"N": [b"0", b"100", b"1000"], b"R": [b"30", b"100"],
            b"C": [b"{cas}"], b"M": [b"S", b"E", b"A", b"P", b"R"],
            b"D": [b"1", b"5", b"100"], b"J": [b"0", b"10"]}
EXPIRED = [b"2592001", b"4294967295", b"-1", b"-100", b"18446744073709551615"]  # of EXPTIMES
DELTAS = [b"1", b"1", b"5", b"0", b"100", b"18446744073709551615", b"18446744073709551614",
          b"18446744073709551616", b"99999999999999999999", b"-1", b"abc", b"+5", b"1.5", b"0x10",
          b" "]
VALUES = [b"", b"0", b"1", b"9", b"42", b"007", b"hello", b"12abc", b" 7", b"-3", b"+5",
          b"18446744073709551615", b"18446744073709551614", b"18446744073709551616",
          b"99999999999999999999", b"a\r\nb", b"x" * 100, b"\x00\xff", b"1 2", b"-0",
          b"89\x00x", b"-18446744073709551615"]
# CAS values to compare with (C, cas): each server's own ({cas}: the last it sent), or ones that
# compare alike on both although their counters differ (cinchd's does not start at 1): below
# every item's (Pair stores an item first, so memcached's first CAS value is taken) or above.
CAS_VALUES = [b"{cas}", b"{cas}", b"{cas}", b"0", b"1", b"abc", b"-1", b"18446744073709551615",
              b"18446744073709551616"]
# Lengths for a data block that is not its announced length (the data follows anyway).
BAD_LENGTHS = [b"abc", b"-1", b"+1", b"2147483646", b"2147483647", b"2147483648",
               b"4294967296", b"18446744073709551615"]
MODES = [b"E", b"A", b"P", b"R", b"S", b"a", b"e", b"p", b"r", b"s", b"I", b"D", b"+", b"-", b"X",
         b"", b"AB"]
ARITH_MODES = [b"I", b"D", b"+", b"-", b"i", b"d", b"A", b"X", b"", b"II"]


class Gen:
    """One seed's command generator."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.pipelined = False  # generating a command after another in the same step

    def pick(self, seq):
        return self.r.choice(seq)

    def chance(self, p):
        return self.r.random() < p

    def key(self, too_long_ok=True):
        roll = self.r.random()
        if roll < 0.93:
            return self.pick(KEYS)
        return self.pick([b"{key250}", b"{k}", b"{k}" + b"z" * 30] +
                         ([b"{key251}"] if too_long_ok else []))

    def number(self):
        return self.pick(NUMBERS)

    def exptime(self):
        return self.pick(EXPTIMES)

    def value(self):
        if self.chance(0.15):
            value = bytes(self.r.choice(b"0123456789ab \r\n") for _ in range(self.r.randint(0, 8)))
            # Not only blanks: memcached's incr would read on past the value (strtoull skips
            # them, and the value is not NUL-terminated): what it finds there is chance.
            return value if value.strip() or not value else value + b"1"
        return self.pick(VALUES)

    def opaque(self, long_ok=True):
        n = self.pick([0, 1, 2, 5, 30, 31] + ([32, 40] if long_ok else []))  # +1 for the O
        return b"O" + bytes(self.r.choice(b"0123456789abcXYZ") for _ in range(n))

    def short_opaque(self):
        """For mg and ma, which memcached rejects a long opaque from only after it has done
        their work (docs/server.md)."""
        return self.opaque(long_ok=False)

    def noreply(self):
        return self.pick([b" noreply"] * 3 + [b" norepl", b" noreply noreply", b" NOREPLY"])

    # --------------------------------------------------------------- data blocks

    def data_block(self, length_ok=0.85):
        """(length token, bytes after the command line) for a storage command."""
        value = self.value()
        if self.chance(length_ok):
            return b"%d" % len(value), value + b"\r\n"
        if self.chance(0.5):
            token = self.pick(BAD_LENGTHS)
            n = int(token) if token.lstrip(b"+").isdigit() and len(token) < 5 else 0
        else:
            n = max(0, len(value) + self.r.randint(-3, 3))
            token = b"%d" % n
        # A length that is not the data's: the block is read by length, so send at least that
        # much (the excess, if any, is read as commands), or the sentinel would be read as data.
        # The filler is no blank (see value()).
        tail = value + b"\r\n"
        if len(tail) < n + 2:
            tail += b"7" * (n + 2 - len(tail)) + b"\r\n"
        return token, tail

    # --------------------------------------------------------------- text commands

    def storage(self):
        cmd = self.pick([b"set", b"set", b"set", b"add", b"replace", b"append", b"prepend",
                         b"cas"])
        length, data = self.data_block()
        tokens = [cmd, self.key(), self.pick([b"0", b"0", b"7"]) if self.chance(0.8)
                  else self.number(), self.exptime() if self.chance(0.25) else b"0", length]
        if cmd == b"cas":
            tokens.append(self.pick(CAS_VALUES))
        tail = self.noreply() if self.chance(0.15) else b""
        tokens = self.mutate(tokens, storage=True)
        return b" ".join(tokens) + tail + b"\r\n" + data

    def retrieval(self):
        cmd = self.pick([b"get", b"get", b"gets", b"gat", b"gats"])
        # A key over 250 bytes only first: memcached has read (gat: touched) the keys before it
        # when it answers the error (docs/server.md), and drops the replies to the requests
        # before it in the same read.
        keys = [self.key(too_long_ok=i == 0 and not self.pipelined)
                for i in range(self.pick([0, 1, 1, 1, 2, 3, 4]))]
        tokens = [cmd] + ([self.exptime()] if cmd in (b"gat", b"gats") else []) + keys
        return b" ".join(self.mutate(tokens)) + b"\r\n"

    def touch(self):
        tokens = [b"touch", self.key(), self.exptime()]
        tail = self.noreply() if self.chance(0.2) else b""
        return b" ".join(self.mutate(tokens)) + tail + b"\r\n"

    def delete(self):
        tokens = [b"delete", self.key()]
        if self.chance(0.15):
            tokens.append(self.pick([b"0", b"5", b"abc"]))
        tail = self.noreply() if self.chance(0.2) else b""
        return b" ".join(self.mutate(tokens)) + tail + b"\r\n"

    def arith(self):
        tokens = [self.pick([b"incr", b"decr"]), self.key(), self.pick(DELTAS)]
        tail = self.noreply() if self.chance(0.15) else b""
        return b" ".join(self.mutate(tokens)) + tail + b"\r\n"

    def mutate(self, tokens, storage=False):
        """Sometimes drops, doubles or adds a token. A storage command's length token stays
        where it is or the line has too few tokens (no data block is then read)."""
        if not self.chance(0.12) or len(tokens) < 2:
            return tokens
        tokens = list(tokens)
        what = self.r.randint(0, 2)
        i = self.r.randint(1, len(tokens) - 1)
        if what == 0:
            del tokens[i]
        elif what == 1 and not storage:
            tokens.insert(i, tokens[i])
        else:
            tokens.append(self.pick([b"extra", b"0", b"noreply", b"1"]))
        return tokens

    # --------------------------------------------------------------- meta commands

    def meta_key(self, flags):
        """A key for a meta command; with base64 ('b' in flags) usually a valid one."""
        if b"b" in flags and self.chance(0.85):
            return b"{b64:%d}" % self.r.randint(0, 5)
        return self.key()

    def meta_flags(self, valid, invalid):
        flags = []
        for _ in range(self.pick([0, 1, 1, 2, 2, 3, 4, 6])):
            flag = self.pick(valid)()
            if flag[:1] not in [f[:1] for f in flags]:
                flags.append(flag)
        if self.chance(0.08):
            flags.append(self.pick(invalid))
        if flags and self.chance(0.08):
            flags.append(self.pick(flags))  # a duplicate
        return flags

    def plain(self, letter):
        return lambda: letter

    def numeric(self, letter, pool=None, ordinary=None):
        """A flag with a number: usually an ordinary one, else one from `pool` (or NUMBERS)."""
        def make():
            if self.chance(0.6):
                return letter + self.pick(ordinary or ORDINARY.get(letter, [b"0", b"1", b"100"]))
            return letter + (self.pick(pool) if pool else self.number())
        return make

    def mg(self):
        valid = [self.plain(c) for c in (b"b", b"c", b"f", b"h", b"k", b"l", b"q", b"s", b"t",
                                         b"u", b"v", b"v", b"v")]
        valid += [self.short_opaque, self.numeric(b"N", EXPTIMES), self.numeric(b"R", EXPTIMES),
                  self.numeric(b"T", EXPTIMES)]
        flags = self.meta_flags(valid, [b"x", b"C1", b"D1", b"J1", b"M+", b"I", b"F1", b"!",
                                        b"S1", b"N", b"T", b"P/x", b"L", b"E5"])
        return b" ".join([b"mg", self.meta_key(flags)] + flags) + b"\r\n"

    def ms(self):
        valid = [self.plain(c) for c in (b"b", b"c", b"I", b"k", b"q")]
        valid += [self.opaque, self.numeric(b"F"), self.numeric(b"T", EXPTIMES),
                  self.numeric(b"C", CAS_VALUES), self.numeric(b"M", MODES)]
        flags = self.meta_flags(valid, [b"x", b"v", b"f", b"t", b"h", b"!", b"D1", b"J1",
                                        b"R1", b"u", b"l", b"s", b"S5", b"E5", b"N30"])
        if b"I" in flags:
            # A stale store compares CAS values by size. cinch derives them from where items
            # are written (docs/item-format.md), so those of different keys are not ordered
            # as memcached's are, and {cas} may be another key's.
            flags = [self.pick([b"C1", b"C18446744073709551615"]) if f == b"C{cas}" else f
                     for f in flags]
        length, data = self.data_block()
        tokens = [b"ms", self.meta_key(flags), length] + flags
        if self.chance(0.03):
            del tokens[2]  # no length: the data line is a command
        return b" ".join(tokens) + b"\r\n" + data

    def md(self):
        valid = [self.plain(c) for c in (b"b", b"I", b"k", b"q")]
        valid += [self.opaque, self.numeric(b"C", CAS_VALUES), self.numeric(b"T", EXPTIMES)]
        flags = self.meta_flags(valid, [b"v", b"f", b"s", b"!", b"N1", b"M+", b"D1", b"c",
                                        b"t", b"x", b"E5"])
        return b" ".join([b"md", self.meta_key(flags)] + flags) + b"\r\n"

    def ma(self):
        valid = [self.plain(c) for c in (b"b", b"c", b"k", b"q", b"t", b"v", b"v")]
        valid += [self.short_opaque, self.numeric(b"N", EXPTIMES), self.numeric(b"J", DELTAS[:8]),
                  self.numeric(b"D", DELTAS), self.numeric(b"T", EXPTIMES),
                  self.numeric(b"M", ARITH_MODES, [b"I", b"D", b"+", b"-"]),
                  self.numeric(b"C", CAS_VALUES)]
        flags = self.meta_flags(valid, [b"f", b"s", b"h", b"l", b"u", b"!", b"I", b"R1",
                                        b"F1", b"J", b"D", b"E5"])
        return b" ".join([b"ma", self.meta_key(flags)] + flags) + b"\r\n"

    def mn(self):
        return self.pick([b"mn\r\n", b"mn\r\n", b"mn q\r\n", b"mn O1\r\n", b"mn k O7\r\n"])

    def me(self):
        if self.chance(0.2):
            return b"me {b64:%d} b\r\n" % self.r.randint(0, 5)
        return b"me " + self.key() + b"\r\n"

    def garbage(self):
        return self.pick([b"\r\n", b"foo\r\n", b"GET {k}0\r\n", b"get\t{k}0\r\n", b"m\r\n",
                          b"mgg {k}0\r\n", b" mg {k}0 v\r\n", b"mg  {k}0  v\r\n",
                          b"mg {k}0 v\n", b"ms {k}0 1 T0\n1\r\n"])

    def command(self):
        # No incr/decr/ma after another command in the same step: a reply memcached has not
        # written yet holds the item, and it then increments into a new item (without the old
        # one's fetched and stale flags) where it would otherwise change it in place.
        arith = 0 if self.pipelined else 1
        kind = self.r.choices(
            [self.storage, self.retrieval, self.touch, self.delete, self.arith, self.mg, self.ms,
             self.md, self.ma, self.mn, self.me, self.garbage],
            weights=[16, 10, 3, 4, 7 * arith, 14, 14, 5, 8 * arith, 1, 2, 1])[0]
        return kind()

    def steps(self):
        n = self.r.randint(6, 20)
        steps = []
        for _ in range(n):
            step = [self.command()]
            if self.chance(0.07):  # a few commands in one step
                self.pipelined = True
                step += [self.command() for _ in range(self.r.randint(1, 2))]
                self.pipelined = False
            steps.append(step)
        return steps


# ----------------------------------------------------------------------------- running


class Pair:
    """memcached and the server under test; each run gets a fresh key prefix."""

    def __init__(self, ref, sut):
        self.ref, self.sut = ref, sut
        self.runs = 0
        for server in (ref, sut):  # memcached's CAS value 1 taken (see CAS_VALUES)
            with server.conn() as conn:
                conn.set(b"warm_up", b"x")

    def run(self, steps):
        """(memcached's, the server's) normalised replies, and the first mismatching step.

        `steps` is a list of steps, each a list of commands sent together.
        """
        steps = [b"".join(step) for step in steps]
        self.runs += 1
        index = 1000 + self.runs  # differential.py's run_case prefixes keys with d<index>_
        r = differential.normalise(differential.run_case(self.ref.port, index, steps))
        s = differential.normalise(differential.run_case(self.sut.port, index, steps))
        bad = differential.first_mismatch(r, s)
        if bad is not None and differential.late(r[bad], s[bad]):
            # memcached answered that step, so the server under test owes a reply too: on a
            # loaded machine it gets longer to give it (the replies are compared the same).
            self.runs += 1
            s = differential.normalise(differential.run_case(self.sut.port, 1000 + self.runs,
                                                             steps,
                                                             timeout=harness.LATE_REPLY))
            bad = differential.first_mismatch(r, s)
        return r, s, bad


def shrink(pair, steps, bad):
    """A shorter sequence that still mismatches: cut after step `bad`, then drop commands."""
    steps = steps[:bad + 1]
    i = 0  # the command to try without, counted across steps
    while True:
        places = [(s, c) for s, step in enumerate(steps) for c in range(len(step))]
        if i >= len(places) or len(places) == 1:
            return steps
        s, c = places[i]
        candidate = [list(step) for step in steps]
        del candidate[s][c]
        candidate = [step for step in candidate if step]
        if pair.run(candidate)[2] is not None:
            steps = candidate
        else:
            i += 1


def report(steps, r, s, sut_name):
    lines = []
    for i, (step, x, y) in enumerate(zip(steps, r, s)):
        mark = "  " if differential.same(x, y) else "!!"
        lines.append("%s step %d sent: %r" % (mark, i, b"".join(step)))
        lines.append("     memcached: %r" % x)
        lines.append("     %s: %r" % (sut_name, y))
    return "\n     ".join(lines)


def main(args):
    c = harness.Checker(args.verbose)
    sut_name = "memcached(2)" if harness.is_memcached(args.server) else "server"
    seeds = [args.seed] if args.seed is not None else range(args.first, args.first + args.seeds)
    failures = 0
    started = time.monotonic()
    with harness.Server(harness.MEMCACHED, differential.SERVER_ARGS) as ref, \
            harness.Server(args.server, differential.SERVER_ARGS) as sut:
        pair = Pair(ref, sut)
        for seed in seeds:
            steps = Gen(seed).steps()
            r, s, bad = pair.run(steps)
            if args.seed is not None:
                print(report(steps, r, s, sut_name))
            if bad is None:
                continue
            small = shrink(pair, steps, bad)
            r2, s2, bad2 = pair.run(small)
            if bad2 is None:  # it did not mismatch again: report the original run
                c.check(False, "seed %d (did not mismatch when run again)" % seed,
                        report(steps[:bad + 1], r, s, sut_name))
            else:
                c.check(False, "seed %d (%d of %d steps)" % (seed, len(small), len(steps)),
                        report(small, r2, s2, sut_name))
            failures += 1
            if failures >= args.max_failures:
                c.note("stopping after %d mismatching seeds" % failures)
                break
        else:
            c.check(True, "%d seeds" % len(seeds))
        c.note("%d seeds, %d runs, %.1f s" % (len(seeds), pair.runs,
                                               time.monotonic() - started))
        c.check(ref.alive(), "memcached still running")
        c.check(sut.alive(), "server still running", sut.log()[-2000:])
    return c.finish()


def options(p):
    p.add_argument("--seeds", type=int, default=3000, help="how many seeds to run")
    p.add_argument("--first", type=int, default=0, help="the first seed")
    p.add_argument("--seed", type=int, help="replay this one seed, printing every step")
    p.add_argument("--max-failures", type=int, default=5,
                   help="stop after this many mismatching seeds")
    p.add_argument("--time-limit", type=int, default=120, help="seconds before giving up")


if __name__ == "__main__":
    parsed = harness.parse_args(__doc__, options)
    harness.run(main, parsed, time_limit=parsed.time_limit)
