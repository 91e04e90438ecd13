//! The kubeconfig file that points clients (kubectl, kube-rs, Panthera's CLI) at the simulator.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::Error;

pub enum KubeconfigFile {
    Temporary(tempfile::TempPath),
    Kept(PathBuf),
}

impl KubeconfigFile {
    pub fn path(&self) -> &Path {
        match self {
            Self::Temporary(p) => p,
            Self::Kept(p) => p,
        }
    }
}

pub fn render(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user:\n    token: {token}\npreferences: {{}}\n"
    )
}

pub fn write(url: &str, token: &str, path: Option<&Path>) -> Result<KubeconfigFile, Error> {
    let contents = render(url, token);
    match path {
        Some(p) => {
            std::fs::write(p, contents).map_err(|source| Error::Kubeconfig {
                path: p.to_owned(),
                source,
            })?;
            Ok(KubeconfigFile::Kept(p.to_owned()))
        }
        None => {
            let mut file = tempfile::Builder::new()
                .prefix("kube-sim-")
                .suffix(".kubeconfig")
                .tempfile()
                .map_err(|source| Error::Kubeconfig {
                    path: std::env::temp_dir(),
                    source,
                })?;
            file.write_all(contents.as_bytes())
                .map_err(|source| Error::Kubeconfig {
                    path: file.path().to_owned(),
                    source,
                })?;
            Ok(KubeconfigFile::Temporary(file.into_temp_path()))
        }
    }
}
