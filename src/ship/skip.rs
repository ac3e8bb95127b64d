//! Images in the daemon: finding one already built from the same inputs
//! (by its build-key label, for `--skip-if-exists`), and tagging.

use std::collections::HashMap;

use crate::reference::split_tag;

use super::daemon::{self, Daemon};
use super::error::ShipError;
use super::event::Event;
use super::prepare::BUILD_KEY_LABEL;

/// The id of a local image labelled with `build_key`, the newest when
/// there are several.
pub async fn find_local(daemon: &Daemon, build_key: &str) -> Result<Option<String>, ShipError> {
    let filters: HashMap<String, Vec<String>> = [(
        "label".to_string(),
        vec![format!("{BUILD_KEY_LABEL}={build_key}")],
    )]
    .into();
    let images = daemon
        .quick
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| ShipError::Api {
            what: "listing images by build key".into(),
            message: daemon::describe(&e),
        })?;
    Ok(images
        .into_iter()
        // The filter is the daemon's; check the label again all the same.
        .filter(|i| i.labels.get(BUILD_KEY_LABEL).map(String::as_str) == Some(build_key))
        .max_by_key(|i| i.created)
        .map(|i| i.id))
}

/// Tags `image` (an id or a name) as `tag`.
pub async fn tag(daemon: &Daemon, image: &str, tag: &str) -> Result<(), ShipError> {
    let (repo, t) = split_tag(tag);
    daemon
        .quick
        .tag_image(
            image,
            Some(bollard::query_parameters::TagImageOptions {
                repo: Some(repo.to_string()),
                tag: Some(t.to_string()),
            }),
        )
        .await
        .map_err(|e| ShipError::Api {
            what: format!("tagging {image} as {tag}"),
            message: daemon::describe(&e),
        })
}

/// After a build: tags the image with every tag but the first (the build
/// applied it), and reports every tag.
pub(crate) async fn tag_built(
    daemon: &Daemon,
    tags: &[String],
    image_id: &str,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<(), ShipError> {
    for t in tags.iter().skip(1) {
        tag(daemon, image_id, t).await?;
    }
    for t in tags {
        on_event(Event::Tag { tag: t.clone() });
    }
    Ok(())
}

/// The id of a local image, `None` when the daemon does not have it.
pub async fn image_id(daemon: &Daemon, image: &str) -> Option<String> {
    daemon
        .quick
        .inspect_image(image)
        .await
        .ok()
        .and_then(|i| i.id)
}
