"""The command line: storescu's conventions (:mod:`dispatch.cli.cmdline`), the options of
``dispatch send`` (:mod:`dispatch.cli.options`) and the entry point (``main``).

Kept empty on purpose: importing the parser must stay cheap (no pydicom, no pynetdicom).
"""
