"""Rendering: certificate cards for IPython, handouts, the trust diagram and progress, from the core's facts."""
