# The import ID is the device's path.
terraform import apim_vault_audit.siem to-siem
