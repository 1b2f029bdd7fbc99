"""Video diffusion models behind one protocol (`policy.VideoPolicy`), their family adapters (`wan`,
`cogvideox`, the shapes world's DiT), the family registry (`families`), tiny test models (`tiny`) and
the ODE/SDE sampler (`sampler`)."""
