"""The backends of the job records and the association slots, one module each.

    memory         MemoryJobStore and MemorySlots: one process (the embedded mode)
    redis          RedisJobStore and RedisSlots: every worker of a cluster
    scripts        the Lua scripts of the Redis backend (package data, ``lua/*.lua``)
    broker_errors  redis-py's and kombu's errors translated into the project's

The contracts they fulfil are :class:`dispatch.jobs.store.JobStore` and
:class:`dispatch.jobs.slots.SlotPool`. The package imports none of its modules, and
none of them imports redis-py before a client is built.
"""
