"""End-to-end tests of ``dispatch send`` against real peers, checked against storescu."""
