"""std.shapes: a procedural text-to-video world with exact rewards, small enough to learn on a CPU."""
