"""SA3D as ECS systems: objects, prompts, the prompted view, propagation over the views."""
