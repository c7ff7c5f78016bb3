//! `atoll tokens`: a tenant's API tokens (list, create, revoke) and the operator token's
//! rotation.

use reqwest::Method;

use super::client::{AdminClient, Payload, escape};
use super::table::{Table, time};
use super::{Connection, Format, print_json};

/// `atoll tokens ...`.
#[derive(Debug, clap::Args)]
pub struct Tokens {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    connection: Connection,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// A tenant's tokens: ids, when made, when last used (never the secrets).
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Makes a token for a tenant (operator) and prints it: the only time it is shown.
    Create {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Revokes a tenant's token by its id; the next request with it gets 401.
    Revoke {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The token's id, as `atoll tokens list` shows it.
        id: String,
    },
    /// Replaces the operator token (operator) and prints the new one: the only time it is
    /// shown. The old one is refused at once.
    RotateOperator,
}

/// Runs the command.
pub fn run(tokens: &Tokens) -> anyhow::Result<()> {
    let client = AdminClient::new(&tokens.connection)?;
    let format = Format::from_flag(tokens.json);
    match &tokens.action {
        Action::List { tenant } => {
            let answer = client.call(
                Method::GET,
                &format!("/v1/tenants/{}/tokens", escape(tenant)),
                Payload::Empty,
            )?;
            if format == Format::Json {
                print_json(&answer);
                return Ok(());
            }
            let mut table = Table::new(&["id", "created", "last used"]);
            for token in answer["tokens"].as_array().into_iter().flatten() {
                table.row(vec![
                    token["id"].as_str().unwrap_or("?").to_owned(),
                    time(token["created"].as_u64()),
                    time(token["last_used"].as_u64()),
                ]);
            }
            print!("{}", table.render());
        }
        Action::Create { tenant } => {
            let answer = client.call(
                Method::POST,
                &format!("/v1/tenants/{}/tokens", escape(tenant)),
                Payload::Empty,
            )?;
            match format {
                Format::Json => print_json(&answer),
                Format::Table => {
                    println!("{}", answer["token"].as_str().unwrap_or_default());
                    eprintln!(
                        "token {} for tenant {tenant}: keep it now, it is not shown again",
                        answer["id"].as_str().unwrap_or("?")
                    );
                }
            }
        }
        Action::Revoke { tenant, id } => {
            client.call(
                Method::DELETE,
                &format!("/v1/tenants/{}/tokens/{}", escape(tenant), escape(id)),
                Payload::Empty,
            )?;
            match format {
                Format::Json => print_json(&serde_json::json!({ "revoked": id })),
                Format::Table => println!("revoked token {id} of tenant {tenant}"),
            }
        }
        Action::RotateOperator => {
            let answer = client.call(Method::POST, "/v1/admin/token/rotate", Payload::Empty)?;
            match format {
                Format::Json => print_json(&answer),
                Format::Table => {
                    println!("{}", answer["token"].as_str().unwrap_or_default());
                    eprintln!(
                        "the operator token is rotated: the old one no longer works; keep this one"
                    );
                }
            }
        }
    }
    Ok(())
}
