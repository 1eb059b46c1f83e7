"""Audio and text towers of the joint text-audio embedding space."""
