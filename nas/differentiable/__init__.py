"""Differentiable hardware-aware search (DARTS, FBNet/GDAS): supernets whose mixed ops carry
architecture parameters, relaxed by softmax or Gumbel-softmax, trained bilevel (weights on one
half of the training images, architecture parameters on the other) against cross-entropy plus
the expected latency read from the job's device table.

``nas.strategies.differentiable`` adapts a sweep of such searches to the engine's ask/tell loop.
Imports torch; nothing in the service imports this package until a differentiable job runs.
"""
