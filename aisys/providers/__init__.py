"""Provider adapters: everything that knows what a provider's payload looks like."""
