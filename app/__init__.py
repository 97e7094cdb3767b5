"""民盼通办 (Minpan): the portal that handles citizens' messages to Tongliao's leaders."""
