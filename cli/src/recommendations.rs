//! Top-k items for a user given by external id, in the shape `recommend` and `demo` print.

use std::path::Path;

use pocketrec::{IdKind, Model, Recommendation};
use serde::Serialize;

use pocketrec_export::ids::resolve_id;

use crate::error::{CliError, Result};

/// An id as printed: a JSON number for integer ids, a string for string ids.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ExternalId {
    /// An integer id.
    Integer(u64),
    /// A string id (stored in the model as its hash).
    Text(String),
}

impl std::fmt::Display for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExternalId::Integer(id) => std::fmt::Display::fmt(id, f),
            ExternalId::Text(s) => f.pad(s),
        }
    }
}

/// One recommended item in the JSON output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoredItem {
    /// The item's external id: its original string when the model stores the strings of its
    /// string ids, else the integer (the 64-bit hash, for string ids without strings).
    pub item: ExternalId,
    /// Its score.
    pub score: f32,
}

/// The answer for one user: `{"user": ID, "items": [{"item": ID, "score": S}, ...]}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserRecommendations {
    /// The user, as given.
    pub user: ExternalId,
    /// Best first.
    pub items: Vec<ScoredItem>,
}

/// `r` as printed: the item named by its original string when the model has them.
fn scored<S: AsRef<[u8]>>(model: &Model<S>, r: &Recommendation) -> Result<ScoredItem> {
    let item = match model.id_str(pocketrec::Role::Item, r.id) {
        Ok(Some(s)) => ExternalId::Text(s.to_string()),
        _ => ExternalId::Integer(r.id),
    };
    Ok(ScoredItem {
        item,
        score: r.score,
    })
}

/// Recommends `k` items for the user written `user` (an integer, or a string for models with
/// string ids), skipping the items written in `exclude`.
pub fn recommend_for<S: AsRef<[u8]>>(
    model: &Model<S>,
    model_path: &Path,
    user: &str,
    k: usize,
    exclude: &[String],
) -> Result<UserRecommendations> {
    let to_export = |source| CliError::Model {
        path: model_path.to_path_buf(),
        source,
    };
    let users = model.users().map_err(to_export)?;
    let items = model.items().map_err(to_export)?;
    let user_id = resolve_id(user, users.id_kind())?;
    let exclude: Vec<u64> = exclude
        .iter()
        .map(|e| resolve_id(e, items.id_kind()))
        .collect::<pocketrec_export::Result<_>>()?;
    let mut out = vec![Recommendation::default(); k];
    let n = model
        .recommend(user_id, k, &exclude, &mut out)
        .map_err(to_export)?;
    Ok(UserRecommendations {
        user: match users.id_kind() {
            IdKind::Integer => ExternalId::Integer(user_id),
            IdKind::StringHash => ExternalId::Text(user.trim().to_string()),
        },
        items: out[..n]
            .iter()
            .map(|r| scored(model, r))
            .collect::<Result<_>>()?,
    })
}

/// The answer for a user folded in from items: `{"folded_from": [ID, ...], "unknown": N,
/// "items": [{"item": ID, "score": S}, ...]}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FoldedRecommendations {
    /// The item ids the user was folded in from, as given (hashes for string ids).
    pub folded_from: Vec<u64>,
    /// How many of them the model does not have (skipped).
    pub unknown: usize,
    /// Best first; the folded-from items are excluded.
    pub items: Vec<ScoredItem>,
}

/// Folds a user in from the items written in `items` (the model's fold-in section) and
/// recommends `k` items for them, skipping those items and the ones in `exclude`.
pub fn recommend_folded<S: AsRef<[u8]>>(
    model: &Model<S>,
    model_path: &Path,
    items: &[String],
    k: usize,
    exclude: &[String],
) -> Result<FoldedRecommendations> {
    let to_export = |source| CliError::Model {
        path: model_path.to_path_buf(),
        source,
    };
    let table = model.items().map_err(to_export)?;
    let kind = table.id_kind();
    let folded_from: Vec<u64> = items
        .iter()
        .map(|e| resolve_id(e, kind))
        .collect::<pocketrec_export::Result<_>>()?;
    let mut excluded = folded_from.clone();
    for e in exclude {
        excluded.push(resolve_id(e, kind)?);
    }
    let mut vector = vec![0.0f32; table.dim()];
    let summary = model
        .fold_in(&folded_from, &[], None, &mut vector)
        .map_err(to_export)?;
    let mut out = vec![Recommendation::default(); k];
    let n = model
        .recommend_vector(&vector, k, &excluded, &mut out)
        .map_err(to_export)?;
    Ok(FoldedRecommendations {
        folded_from,
        unknown: summary.unknown,
        items: out[..n]
            .iter()
            .map(|r| scored(model, r))
            .collect::<Result<_>>()?,
    })
}

impl FoldedRecommendations {
    /// The human-readable table printed without `--json`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "top {} items for a user folded in from {} item{}{}\n",
            self.items.len(),
            self.folded_from.len(),
            if self.folded_from.len() == 1 { "" } else { "s" },
            if self.unknown > 0 {
                format!(" ({} not in the model, skipped)", self.unknown)
            } else {
                String::new()
            }
        );
        s.push_str(" rank                  item       score\n");
        for (rank, item) in self.items.iter().enumerate() {
            s.push_str(&format!(
                "{:>5}  {:>20}  {:>10.5}\n",
                rank + 1,
                item.item,
                item.score
            ));
        }
        s
    }
}

impl UserRecommendations {
    /// The human-readable table printed without `--json`.
    pub fn to_text(&self) -> String {
        let user = match &self.user {
            ExternalId::Integer(id) => id.to_string(),
            ExternalId::Text(s) => format!("{s:?}"),
        };
        let mut s = format!("top {} items for user {user}\n", self.items.len());
        s.push_str(" rank                  item       score\n");
        for (rank, item) in self.items.iter().enumerate() {
            s.push_str(&format!(
                "{:>5}  {:>20}  {:>10.5}\n",
                rank + 1,
                item.item,
                item.score
            ));
        }
        s
    }
}
