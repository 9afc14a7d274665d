"""Jobs of the distributed sender: scanning, job records, slots, and the chunk runner.

This package knows nothing of Celery (the workers in the top-level ``workers`` package
call :func:`run_chunk`; :mod:`dispatch.jobs.enqueue` sends tasks by name) and imports
redis-py only inside :mod:`dispatch.jobs.backends.redis` when a store is built.

    model        FileRef, Chunk, JobSpec, JobState and their JSON form
    scan         read inputs, group by study, cut into chunks (Scanner: incrementally)
    store        the JobStore contract, JobProgress
    slots        the SlotPool contract (leased association slots per destination),
                 wait_for_slot, the heartbeat
    backends     memory and redis: each backend's job store and slot pool
    publish      TaskPublisher: Celery's task messages and events written onto Redis
    backoff      backoff_s: exponential with full jitter
    runner       run_chunk: one task's body
    attempt      attempt_chunk: the retry decision and its guard; give_up
    embedded     EmbeddedRun: the chunks on threads of this process
    feed         feed_job: record a job open and hand out its chunks while scanning
    enqueue      send_chunks, wait_for_job, resend_reaped
    submit       submit: the whole use case of ``dispatch submit``
    config       JobsConfig, load_config

The package imports none of its modules: a command that only reads job records (or
only enqueues) does not pay for the association engine the runner brings in.
"""
