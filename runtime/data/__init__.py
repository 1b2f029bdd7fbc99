"""Reading the datasets a plan names and the artifacts jobs hand each other."""
