"""Polite HTTP(S) fetching of audio URL lists into raw storage, ahead of the clean job.

``urls`` reads URL lists and decides what a URL or response may be, ``robots`` caches robots.txt
per host, ``fetcher`` does one GET with redirects, limits, retries and per-host rate limits,
``listing`` finds audio links and licenses in HTML pages, and ``crawler`` ties them together into
manifest rows. Only the standard library talks HTTP.
"""
