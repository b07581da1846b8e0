"""Device in the loop: measurement agents, the runtimes they measure with, onboarding and verification."""
