"""Views: each takes the state it shows in its constructor, connects to its signals and only draws."""
