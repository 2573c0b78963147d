"""What holdings are worth: the value rule, the price book it reads, daily valuations."""
