"""microscheduler — placeholder until the core lands."""
