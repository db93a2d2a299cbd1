"""Jobs for tests of tconv.engine: they report where they ran, or misbehave on chosen items."""
import os
import time

from tconv.engine import Job


class WhereAndSquare(Job):
    """``(pid of the process, item squared)``; remembers set-ups in the process."""

    setups = 0

    def setup(self):
        WhereAndSquare.setups += 1

    def run(self, item):
        return os.getpid(), WhereAndSquare.setups, item * item


class Misbehaves(Job):
    """Squares its item, except: items in ``aborts`` abort the process, in ``hangs`` sleep."""

    def __init__(self, aborts=(), hangs=()):
        self.aborts, self.hangs = set(aborts), set(hangs)

    def run(self, item):
        if item in self.aborts:
            os.abort()
        if item in self.hangs:
            time.sleep(3600)
        return item * item
