variable "siem_collector_address" {
  description = "host:port of the SIEM's TCP collector (e.g. a Fluent Bit or Vector tcp input)."
  type        = string
}

variable "audit_log_file" {
  description = "Audit log on the Vault server, shipped to the SIEM by a log agent."
  type        = string
  default     = "/var/log/vault/audit.log"
}

# Every login and secret read, as JSON lines, straight to the SIEM's collector.
resource "apim_vault_audit" "siem" {
  type        = "socket"
  path        = "to-siem"
  description = "Vault events to the SIEM"
  options = {
    address     = var.siem_collector_address
    socket_type = "tcp"
    format      = "json"
  }
}

# A second device, so that Vault keeps serving when the collector is unreachable: Vault
# refuses requests it cannot write to at least one audit device.
resource "apim_vault_audit" "file" {
  type = "file"
  options = {
    file_path = var.audit_log_file
  }
}
