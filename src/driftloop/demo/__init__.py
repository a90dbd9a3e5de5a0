"""``driftloop demo``: the closed loop, end to end, on this machine.

Train a champion, start the embedded stack, replay live traffic with
feedback, shift the traffic, and watch drift fire an alert, the trigger
launch a retraining run, the gate promote a challenger and the predictor
serve it -- printed as a timeline, ended by a summary.
"""
