//! Image references `[registry[:port]/]path[:tag][@digest]`, parsed and validated by the
//! distribution reference grammar (`oci-spec`'s `Reference`, Docker's normalization: no
//! registry means `docker.io`, a single path component there means `library/`).
//!
//! [`ImageRef`] keeps the name as it was written (`nginx`, not `docker.io/library/nginx`), since
//! files are edited as written, and compares by the normalized name ([`ImageRef::same_image`]).

use std::fmt;

use oci_spec::distribution::Reference;

/// A parsed image reference. `tag` and `digest` are what was written: unlike the registry
/// view, no tag is not `latest` here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    name: String,
    tag: Option<String>,
    digest: Option<String>,
    normalized: Reference,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

impl ImageRef {
    /// Parse `name[:tag][@digest]`.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let error = |reason: String| ReferenceError {
            reference: text.to_owned(),
            reason,
        };
        let normalized: Reference = text.parse().map_err(|e| error(format!("{e}")))?;
        // The grammar has been checked, so the parts are where the separators say.
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_owned())),
            None => (text, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag.to_owned())),
            _ => (rest, None),
        };
        Ok(ImageRef {
            name: name.to_owned(),
            tag,
            digest,
            normalized,
        })
    }

    /// The name as written, without tag or digest.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The registry host (`docker.io` when none was written).
    pub fn registry(&self) -> &str {
        self.normalized.registry()
    }

    /// The repository path in its registry (`library/nginx` for `nginx`).
    pub fn repository(&self) -> &str {
        self.normalized.repository()
    }

    /// `registry/repository`: the name every spelling of one image shares.
    pub fn normalized_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// Whether both name the same image (tags and digests aside): `nginx`,
    /// `docker.io/nginx` and `docker.io/library/nginx` do.
    pub fn same_image(&self, other: &ImageRef) -> bool {
        self.registry() == other.registry() && self.repository() == other.repository()
    }

    /// This image under another name, with another tag and digest (each may be absent).
    pub fn with_parts(
        name: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Self, ReferenceError> {
        let mut text = name.to_owned();
        if let Some(tag) = tag {
            text = format!("{text}:{tag}");
        }
        if let Some(digest) = digest {
            text = format!("{text}@{digest}");
        }
        ImageRef::parse(&text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3";

    #[test]
    fn parts_are_kept_as_written_and_normalized_for_comparison() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!((r.name(), r.tag(), r.digest()), ("nginx", None, None));
        assert_eq!(r.normalized_name(), "docker.io/library/nginx");

        let r = ImageRef::parse("registry.example.com:5000/team/app:v1.2.3").unwrap();
        assert_eq!(r.name(), "registry.example.com:5000/team/app");
        assert_eq!(r.tag(), Some("v1.2.3"));
        assert_eq!(r.registry(), "registry.example.com:5000");
        assert_eq!(r.repository(), "team/app");

        let r = ImageRef::parse(&format!("localhost:5000/app@{DIGEST}")).unwrap();
        assert_eq!((r.name(), r.tag()), ("localhost:5000/app", None));
        assert_eq!(r.digest(), Some(DIGEST));
        let r = ImageRef::parse(&format!("ghcr.io/o/app:1.0@{DIGEST}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (Some("1.0"), Some(DIGEST)));
        assert_eq!(r.to_string(), format!("ghcr.io/o/app:1.0@{DIGEST}"));

        let a = ImageRef::parse("nginx:1").unwrap();
        // index.docker.io is Docker Hub's legacy name.
        for same in [
            "docker.io/nginx:2",
            "docker.io/library/nginx",
            "index.docker.io/nginx",
        ] {
            assert!(a.same_image(&ImageRef::parse(same).unwrap()), "{same}");
        }
        assert!(!a.same_image(&ImageRef::parse("ghcr.io/library/nginx").unwrap()));
    }

    #[test]
    fn invalid_references_are_refused_with_the_cause() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx@sha256:12",
            "a//b",
            "nginx:tag with space",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
