"""Recipes: the commands that rebuild pyface3d's own artefacts from source data
(``pyface3d recipe ...``; see docs/recipe_default_model.md)."""
