"""Video diffusion models behind one protocol (VideoPolicy), built from a plan's model spec."""
