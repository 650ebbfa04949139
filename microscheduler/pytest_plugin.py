"""pytest plugin for microscheduler (fixtures land with the integrations issue)."""
