"""Read models folded from the log. Pure folds here; persistence beside them."""
