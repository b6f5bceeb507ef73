"""Where work runs: the Ray session, runners, training launchers, clusters and job submission.

Only this package starts, joins or stops Ray; stages and models never import it.
"""
