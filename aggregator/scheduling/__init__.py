"""Running the daemon: schedule, systemd integration, metrics."""
