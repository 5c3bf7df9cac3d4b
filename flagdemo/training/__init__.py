"""Changing a model's weights: LM-Cocktail's merges (``cocktail``) and a small contrastive fine-tune (``finetune``)."""
