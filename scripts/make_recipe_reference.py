"""Write docs/recipes.md from the recipe classes:  python scripts/make_recipe_reference.py"""

from pathlib import Path

from mtl_nlp.recipe_reference import recipe_reference

target = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
target.write_text(recipe_reference(), encoding="utf-8")
print(f"Wrote {target}")
