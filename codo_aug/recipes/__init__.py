"""Recipes: every random choice of a sample as frozen plain data, and the sampler that draws them."""
