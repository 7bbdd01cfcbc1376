"""Background work: the worker loop and its one clock, sends, dispatch, deliveries, imports, look-ups, the sweeper, periodic jobs."""
