//! Amazon ECR: recognising its registry hosts and getting a push token.
//!
//! Uses aws-config's standard chain (env keys, profiles, web identity,
//! container and instance roles), so `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL_ECR` and `AWS_ENDPOINT_URL` all apply.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::auth::Credentials;

pub(crate) use crate::auth::{parse_ecr_host as parse_host, EcrHost};

/// Errors talking to ECR.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    /// An ECR API call failed (credentials, network, permissions).
    #[error("ECR {call} in {region} failed: {message}\n  Check AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the region")]
    Call {
        /// The API call (`GetAuthorizationToken`...).
        call: &'static str,
        /// The registry's region.
        region: String,
        /// The SDK's error with its causes.
        message: String,
    },
    /// `GetAuthorizationToken` answered without a token for this account.
    #[error("ECR returned no authorization data for account {0}")]
    NoToken(String),
    /// The token did not decode to `AWS:<password>`.
    #[error("ECR's authorization token is not base64 of AWS:<password>")]
    BadToken,
    /// The tag's repository does not exist and `--create-repo` was not given.
    #[error("the ECR repository {repository} does not exist in account {account} ({region})\n  Create it (`aws ecr create-repository --repository-name {repository}`), or pass --create-repo")]
    NoRepository {
        /// The repository name.
        repository: String,
        /// The AWS account of the registry.
        account: String,
        /// The registry's region.
        region: String,
    },
}

/// Runs AWS SDK work with tracing silenced. At trace level the SDK logs
/// whole responses, GetAuthorizationToken's token among them; secrets must
/// not reach the log at any level (`RUST_LOG=trace` included).
async fn quietly<F: std::future::Future>(work: F) -> F::Output {
    use tracing::instrument::WithSubscriber;
    work.with_subscriber(tracing::subscriber::NoSubscriber::default())
        .await
}

async fn client(host: &EcrHost) -> aws_sdk_ecr::Client {
    let config = quietly(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(host.region.clone()))
            .load(),
    )
    .await;
    aws_sdk_ecr::Client::new(&config)
}

fn describe_sdk_error<E: std::error::Error + 'static>(e: &E) -> String {
    crate::error_chain::join(e)
}

/// The registry credentials (user `AWS` and a 12-hour password) from
/// `GetAuthorizationToken`.
pub async fn credentials(host: &EcrHost) -> Result<Credentials, EcrError> {
    tracing::debug!(account = %host.account, region = %host.region, "ECR GetAuthorizationToken");
    let client = client(host).await;
    #[allow(deprecated)]
    let out = quietly(
        client
            .get_authorization_token()
            .registry_ids(host.account.clone())
            .send(),
    )
    .await
    .map_err(|e| EcrError::Call {
        call: "GetAuthorizationToken",
        region: host.region.clone(),
        message: describe_sdk_error(&aws_sdk_ecr::Error::from(e)),
    })?;
    let token = out
        .authorization_data()
        .first()
        .and_then(|d| d.authorization_token())
        .ok_or_else(|| EcrError::NoToken(host.account.clone()))?;
    let decoded = STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(EcrError::BadToken)?;
    let (user, password) = decoded.split_once(':').ok_or(EcrError::BadToken)?;
    Ok(Credentials {
        username: user.to_string(),
        secret: password.to_string(),
        source: "ECR GetAuthorizationToken".into(),
    })
}

/// Whether `repository` exists in the registry.
pub async fn repository_exists(host: &EcrHost, repository: &str) -> Result<bool, EcrError> {
    let client = client(host).await;
    tracing::debug!(repository, "ECR DescribeRepositories");
    let described = quietly(
        client
            .describe_repositories()
            .registry_id(host.account.clone())
            .repository_names(repository)
            .send(),
    )
    .await;
    match described {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = aws_sdk_ecr::Error::from(e);
            if matches!(e, aws_sdk_ecr::Error::RepositoryNotFoundException(_)) {
                return Ok(false);
            }
            Err(EcrError::Call {
                call: "DescribeRepositories",
                region: host.region.clone(),
                message: describe_sdk_error(&e),
            })
        }
    }
}

/// Creates `repository` unless it exists. Returns whether it was created.
pub async fn ensure_repository(host: &EcrHost, repository: &str) -> Result<bool, EcrError> {
    if repository_exists(host, repository).await? {
        return Ok(false);
    }
    let client = client(host).await;
    tracing::info!(repository, "creating the ECR repository");
    quietly(
        client
            .create_repository()
            .registry_id(host.account.clone())
            .repository_name(repository)
            .send(),
    )
    .await
    .map_err(|e| EcrError::Call {
        call: "CreateRepository",
        region: host.region.clone(),
        message: describe_sdk_error(&aws_sdk_ecr::Error::from(e)),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let h = parse_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(
            (h.account.as_str(), h.region.as_str()),
            ("123456789012", "eu-west-1")
        );
        assert_eq!(
            parse_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")
                .unwrap()
                .region,
            "cn-north-1"
        );
        assert_eq!(
            parse_host("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com")
                .unwrap()
                .region,
            "us-east-1"
        );
        assert_eq!(
            parse_host("123456789012.dkr-ecr.us-west-2.on.aws")
                .unwrap()
                .region,
            "us-west-2"
        );
        assert!(parse_host("ghcr.io").is_none());
        assert!(parse_host("12345.dkr.ecr.us-east-1.amazonaws.com").is_none());
        assert!(parse_host("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io").is_none());
    }
}
