"""Job functions: what a command does, end to end, without any rendering (clean, curate, crawl, ...)."""
