"""The generation model of the self-labeling rounds: annotation -> speech -> scene."""
