//! Writing secrets: a new version of a KV version 2 secret, and rotating a database static
//! role's password. The values written are never logged (the transport logs method, path and
//! status only), and the answers are read for the version and nothing else.
//! API reference: <https://openbao.org/api-docs/secret/kv/kv-v2/#create-update-secret> and
//! <https://openbao.org/api-docs/secret/databases/#rotate-static-role-credentials>.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::fields::Data;
use super::path::{segment, segments};
use super::{json_body, Vault, VaultError};

/// Body of `POST <mount>/data/<path>`.
#[derive(Serialize)]
struct WriteKv<'a> {
    data: &'a BTreeMap<String, String>,
}

/// The `data` of its answer (the fields used here).
#[derive(Deserialize)]
struct Written {
    version: u64,
}

impl Vault {
    /// `POST <data path>` of a KV version 2 mount (e.g. `kv/data/orders/backend`): writes
    /// `data` as the secret's new version and returns the version's number.
    pub async fn write_kv_v2(
        &self,
        data_path: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<u64, VaultError> {
        let path = segments("secret path", data_path)?;
        let body = json_body(&WriteKv { data });
        let answer: Data<Written> = self.send(Method::POST, &path, Some(&body)).await?;
        Ok(answer.data.version)
    }

    /// `POST <mount>/rotate-role/<name>`: the database engine sets a new password for the
    /// static role's user now, which `<mount>/static-creds/<name>` then returns.
    pub async fn rotate_static_role(&self, mount: &str, name: &str) -> Result<(), VaultError> {
        let path = format!(
            "{}/rotate-role/{}",
            segments("mount path", mount)?,
            segment("static role name", name)?
        );
        self.send::<serde_json::Value>(Method::POST, &path, None)
            .await
            .map(|_| ())
    }
}
