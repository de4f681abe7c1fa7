import {
  to = apim_vault_audit.siem
  identity = {
    path = "to-siem"
  }
}
