# The import ID is the device's path (as for the Vault provider's `vault_audit`), or its API
# path `sys/audit/<path>`.
terraform import apim_vault_audit.siem to-siem
terraform import apim_vault_audit.siem sys/audit/to-siem
