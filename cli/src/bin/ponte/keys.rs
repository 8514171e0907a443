//! `ponte key ...`: a participant's directory keys.

use crate::ParticipantArgs;
use clap::Subcommand;

/// Key types on the command line, by the names in the directory's one name
/// table (`person_id` or `person-id`, `phone`, ...; `cpf` and the wire names
/// work too).
pub(crate) fn key_type_arg(text: &str) -> Result<ponte_sdk::KeyType, String> {
    ponte_sdk::KeyType::from_name(text).ok_or_else(|| {
        let names: Vec<_> = ponte_sdk::KeyType::ALL.iter().map(|kind| kind.name()).collect();
        format!("unknown key type {text:?}; one of {}", names.join(", "))
    })
}

#[derive(Subcommand)]
pub(crate) enum KeyAction {
    /// Register a key for one of the participant's accounts.
    Register {
        #[arg(value_parser = key_type_arg)]
        kind: ponte_sdk::KeyType,
        /// The key (empty for a random key: the directory makes one).
        #[arg(default_value = "")]
        value: String,
        #[arg(long, default_value = "1")]
        branch: String,
        #[arg(long)]
        account: String,
        /// The account owner's national id (CPF for a person, CNPJ for a business).
        #[arg(long)]
        owner_id: String,
        #[arg(long)]
        owner_name: String,
        /// The owner is a business.
        #[arg(long)]
        business: bool,
    },
    /// Look a key up for an end user (rate limited).
    Lookup {
        #[arg(value_parser = key_type_arg)]
        kind: ponte_sdk::KeyType,
        value: String,
        /// The national id of the end user asking (a person's CPF by default).
        #[arg(long)]
        end_user: String,
        #[arg(long)]
        end_user_business: bool,
    },
    /// The participant's keys and the directory's reconciliation digest.
    List,
    /// Delete one of the participant's keys.
    Delete {
        #[arg(value_parser = key_type_arg)]
        kind: ponte_sdk::KeyType,
        value: String,
    },
}

pub(crate) async fn key(connection: ParticipantArgs, action: KeyAction) -> anyhow::Result<()> {
    use ponte_directory::keys::parse_existing;
    use ponte_sdk::directory::EndUser;
    use ponte_sdk::{Account, AccountType, Owner, OwnerKind};
    let me = connection.participant;
    let client = connection.client().await?;
    let kind_of = |business: bool| if business { OwnerKind::Business } else { OwnerKind::Person };
    match action {
        KeyAction::Register { kind, value, branch, account, owner_id, owner_name, business } => {
            let account = Account::new(me, &branch, &account, AccountType::Checking)?;
            let owner = Owner { kind: kind_of(business), id: owner_id, name: owner_name };
            let entry = client.register_key(kind, &value, &account, &owner).await?;
            println!("registered {} {} -> {:?}", entry.key.kind().as_str(), entry.key.value(), entry.account);
        }
        KeyAction::Lookup { kind, value, end_user, end_user_business } => {
            let key = parse_existing(&connection.country, kind, &value)?;
            let user = EndUser { kind: kind_of(end_user_business), id: end_user };
            let found = client.lookup_key(&key, &user).await?;
            println!(
                "{} -> {:?}, owner {} ({})",
                key.kind().as_str(),
                found.account,
                found.owner_name_masked,
                found.owner_id_masked
            );
        }
        KeyAction::List => {
            let (entries, digest) = client.list_keys().await?;
            for entry in &entries {
                println!("{:<12} {:<40} {:?}", entry.key.kind().as_str(), entry.key.value(), entry.account);
            }
            println!("{} keys, digest {digest:016x}", entries.len());
        }
        KeyAction::Delete { kind, value } => {
            let key = parse_existing(&connection.country, kind, &value)?;
            client.delete_key(&key).await?;
            println!("deleted");
        }
    }
    Ok(())
}
