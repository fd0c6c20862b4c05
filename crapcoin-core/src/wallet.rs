//! The node's ed25519 key: its address, and signing transfers.

use std::path::Path;

use crate::hash::{Address, BlockHash, Signature};
use crate::tx::Transaction;

/// An ed25519 signing key and the address it controls.
#[derive(Clone)]
pub struct Wallet {
    key: ed25519_consensus::SigningKey,
    address: Address,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Wallet")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// Reading or writing the file failed.
    #[error("wallet file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold exactly 32 key bytes.
    #[error("wallet file {path} holds {len} bytes, expected 32")]
    BadLength {
        /// The file.
        path: String,
        /// Bytes found.
        len: usize,
    },
}

impl Wallet {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The key with these 32 secret bytes (deterministic: tests and seeded
    /// simulations use it).
    pub fn from_bytes(secret: [u8; 32]) -> Self {
        let key = ed25519_consensus::SigningKey::from(secret);
        let address = Address(key.verification_key().to_bytes());
        Self { key, address }
    }

    /// The key derived from a seed number, for reproducible runs.
    pub fn from_seed(seed: u64) -> Self {
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&seed.to_be_bytes());
        secret[8..16].copy_from_slice(b"crapseed");
        Self::from_bytes(secret)
    }

    /// The 32 secret bytes, for saving.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The address this key signs for.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs an arbitrary message (behaviours use it to forge).
    pub fn sign_bytes(&self, message: &[u8]) -> Signature {
        Signature(self.key.sign(message).to_bytes())
    }

    /// A signed transfer on the network `chain_id`.
    pub fn transfer(
        &self,
        chain_id: &BlockHash,
        to: Address,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> Transaction {
        let message = Transaction::signing_bytes(chain_id, &self.address, &to, amount, fee, nonce);
        Transaction {
            from: self.address,
            to,
            amount,
            fee,
            nonce,
            signature: self.sign_bytes(&message),
        }
    }

    /// Writes the secret to `path` (created with mode 0600 on Unix), via a
    /// temporary file and a rename so a crash never leaves half a key.
    ///
    /// # Errors
    ///
    /// [`WalletError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), WalletError> {
        let io = |source| WalletError::Io {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(io)?;
            file.write_all(&self.to_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a key saved by [`Wallet::save`].
    ///
    /// # Errors
    ///
    /// [`WalletError::Io`] or [`WalletError::BadLength`].
    pub fn load(path: &Path) -> Result<Self, WalletError> {
        let bytes = std::fs::read(path).map_err(|source| WalletError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let secret: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| WalletError::BadLength {
                path: path.display().to_string(),
                len: bytes.len(),
            })?;
        Ok(Self::from_bytes(secret))
    }

    /// Loads the key at `path`, or makes and saves a new one if there is none.
    ///
    /// # Errors
    ///
    /// As [`Wallet::load`] and [`Wallet::save`].
    pub fn load_or_create(path: &Path) -> Result<Self, WalletError> {
        if path.exists() {
            return Self::load(path);
        }
        let wallet = Self::generate();
        wallet.save(path)?;
        Ok(wallet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_transfer_verifies_only_on_its_network() {
        let w = Wallet::from_seed(1);
        let chain = BlockHash([7; 32]);
        let tx = w.transfer(&chain, Address([9; 32]), 5, 1, 0);
        assert!(tx.verify_signature(&chain));
        assert!(!tx.verify_signature(&BlockHash([8; 32])));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("crapcoin-wallet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("key");
        let w = Wallet::load_or_create(&path).expect("creates");
        let again = Wallet::load_or_create(&path).expect("loads");
        assert_eq!(w.address(), again.address());
        std::fs::write(&path, b"short").expect("writes");
        assert!(matches!(
            Wallet::load(&path),
            Err(WalletError::BadLength { len: 5, .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }
}
