"""Translation jobs beyond one machine: drivers of `nmt` for cluster engines (Ray Data)."""
