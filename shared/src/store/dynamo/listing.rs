//! `list`: how a filter is served (key, index or evaluation over the tenant's resources), the index
//! Queries, the bounded filtered scan, and unfiltered paging — by cursor, or by `startIndex` from the
//! position checkpoints of [`super::positions`], keyed by the counter shards' change sequence. Imports the
//! parent module, `table` and `positions`; reads a resource by id through the `ResourceStore` contract.

use super::table::{classify, record_read, TOTAL};
use super::{from_item, key, DynamoStore, Item, SEQ};
use crate::filter::{CompValue, CompareOp, Filter};
use crate::model::{self, StoredResource};
use crate::schema::ResourceType;
use crate::store::keys::{self, GSI1, GSI1PK, GSI2, GSI2PK, PK, SK};
use crate::store::{limits, record_call, ListPage, ListQuery, PageFill, ResourceStore, StoreError};
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sdk_dynamodb::types::Select;

/// Items per page when a filter must be evaluated over the tenant's resources.
const SCAN_PAGE: i32 = 500;
/// Items per page when skipping to `startIndex` with `Select=COUNT`.
const SKIP_PAGE: usize = 1000;

/// What the counter shards of a type say.
#[derive(Debug, Clone, Copy)]
struct Counters {
    total: usize,
    seq: u64,
}

impl DynamoStore {
    /// [`ResourceStore::list`].
    pub(super) async fn list_resources(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        q: ListQuery<'_>,
    ) -> Result<ListPage, StoreError> {
        let Some(filter) = q.filter else {
            let counters = self.total(tenant, rt).await?;
            let total = counters.total;
            let skip = q.start_index.saturating_sub(1);
            if q.count == 0 || skip >= total {
                return Ok(ListPage {
                    total,
                    ..ListPage::default()
                });
            }
            let (start, seq) = match q.after {
                Some(id) => (Some(key(&keys::resource_pk(tenant, rt), id)), None),
                None => (None, Some(counters)),
            };
            let page = self
                .list_unfiltered(tenant, rt, skip, &q, start, seq)
                .await?;
            return Ok(ListPage { total, ..page });
        };
        let candidates = match plan(filter, rt) {
            Access::ById(id) => self.get(tenant, rt, &id).await?.into_iter().collect(),
            Access::ByUnique(u) => self
                .query_index(GSI1, GSI1PK, keys::gsi1pk(tenant, rt, &u))
                .await?
                .iter()
                .map(from_item)
                .collect::<Result<Vec<_>, _>>()?,
            Access::ByExternalId(x) => self
                .query_index(GSI2, GSI2PK, keys::gsi2pk(tenant, rt, &x))
                .await?
                .iter()
                .map(from_item)
                .collect::<Result<Vec<_>, _>>()?,
            Access::Evaluate => return self.scan_filtered(tenant, rt, filter, &q).await,
        };
        let mut matches: Vec<StoredResource> = candidates
            .into_iter()
            .filter(|r| filter.matches(&model::render(r, rt, ""), rt))
            .collect();
        matches.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(q.window(matches))
    }

    async fn query_index(
        &self,
        index: &str,
        key_attr: &str,
        key: String,
    ) -> Result<Vec<Item>, StoreError> {
        limits::index_key(&key)?;
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        // Unique and externalId keys hold a handful of items; the loop is bounded all the same.
        for _ in 0..100 {
            record_call("Query");
            let r = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", key_attr)
                .expression_attribute_values(":k", AV::S(key.clone()))
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(TOTAL)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            out.extend(r.items.unwrap_or_default());
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The counter shards of `rt` in one Query: the number of resources, and the sum of the shards'
    /// change sequences (bumped by every create and delete; it keys the paging checkpoints).
    async fn total(&self, tenant: &str, rt: &ResourceType) -> Result<Counters, StoreError> {
        record_call("Query");
        let r = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :p)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", AV::S(keys::counter_pk(tenant)))
            .expression_attribute_values(":p", AV::S(keys::counter_prefix(rt)))
            .consistent_read(true)
            .return_consumed_capacity(TOTAL)
            .send()
            .await
            .map_err(|e| classify("Query", e))?;
        record_read(r.consumed_capacity());
        let num = |i: &Item, a: &str| {
            i.get(a)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let sum: i64 = r.items().iter().map(|i| num(i, "n")).sum();
        let seq: i64 = r.items().iter().map(|i| num(i, SEQ)).sum();
        Ok(Counters {
            total: sum.max(0) as usize,
            seq: seq.max(0) as u64,
        })
    }

    /// Page through the tenant's resources of type `rt` in id order: skip `skip`, then read `q.count` —
    /// fewer when `q.budget` ends the page first; reading stops there (a Query returns at most 1 MB, so
    /// at most the budget and one Query's items are held). The page's `total` is left to the caller.
    ///
    /// Cursor paging passes its `start` key and `seq = None`. Index paging passes `seq` (the counters:
    /// change sequence and total): it starts from the nearest checkpoint at or below position `skip` learned at the
    /// same sequence, skips only the rest with `Select=COUNT`, and teaches the checkpoints it passes and
    /// the last item of the page. Its reads are strongly consistent, so that a checkpoint never records a
    /// replica's older state under the newer sequence (it would outlive the request).
    async fn list_unfiltered(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        skip: usize,
        q: &ListQuery<'_>,
        mut start: Option<Item>,
        seq: Option<Counters>,
    ) -> Result<ListPage, StoreError> {
        let pk = keys::resource_pk(tenant, rt);
        let mut to_skip = skip;
        if let Some(seq) = seq {
            if let Some((at, id)) = self
                .positions
                .nearest(tenant, rt.name, seq.seq, seq.total, skip)
            {
                start = Some(key(&pk, &id));
                to_skip = skip - at;
            }
        }
        let learn = |position: usize, last: Option<&str>| {
            if let (Some(seq), Some(id)) = (seq, last) {
                self.positions
                    .learn(tenant, rt.name, seq.seq, seq.total, position, id);
            }
        };
        while to_skip > 0 {
            record_call("Query");
            let r = self
                .partition_query(&pk, start.take())
                .select(Select::Count)
                .limit(to_skip.min(SKIP_PAGE) as i32)
                .consistent_read(seq.is_some())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            to_skip = to_skip.saturating_sub(r.count as usize);
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => {
                    learn(
                        skip - to_skip,
                        k.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str),
                    );
                    start = Some(k)
                }
                _ => return Ok(ListPage::default()),
            }
        }
        let mut fill = PageFill::new(q);
        let mut more = false;
        while fill.open() {
            record_call("Query");
            let r = self
                .partition_query(&pk, start.take())
                .limit((q.count - fill.items.len()) as i32)
                .consistent_read(seq.is_some())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            for item in r.items.unwrap_or_default() {
                if !fill.push(from_item(&item)?) {
                    break;
                }
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => {
                    more = true;
                    start = Some(k)
                }
                _ => {
                    more = false;
                    break;
                }
            }
        }
        // The budget ended the page: resources follow its last one (in this Query's answer or after it).
        more |= fill.full;
        learn(
            skip + fill.items.len(),
            fill.items.last().map(|r| r.id.as_str()),
        );
        Ok(ListPage {
            total: 0,
            items: fill.items,
            more,
            full: fill.full,
        })
    }

    /// Evaluate `filter` over the tenant's resources, page by page, examining at most `q.max_scan`: every
    /// match is counted, only the page's are kept (the partition is read in id order, so the matches
    /// before the page — by `startIndex` or up to the cursor's id — come first).
    async fn scan_filtered(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        filter: &Filter,
        q: &ListQuery<'_>,
    ) -> Result<ListPage, StoreError> {
        let (pk, max_scan) = (keys::resource_pk(tenant, rt), q.max_scan);
        let mut start: Option<Item> = None;
        let mut examined = 0usize;
        let (mut total, mut before) = (0usize, 0usize);
        let mut fill = PageFill::new(q);
        loop {
            record_call("Query");
            // Read at most one item past the bound: seeing it proves the bound is exceeded.
            let limit = (max_scan + 1 - examined).min(SCAN_PAGE as usize) as i32;
            let r = self
                .partition_query(&pk, start.take())
                .limit(limit)
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            record_read(r.consumed_capacity());
            for item in r.items.unwrap_or_default() {
                examined += 1;
                let res = from_item(&item)?;
                if !filter.matches(&model::render(&res, rt, ""), rt) {
                    continue;
                }
                total += 1;
                let ahead = match q.after {
                    Some(after) => res.id.as_str() <= after,
                    None => total < q.start_index,
                };
                if ahead {
                    before += 1;
                } else if fill.open() {
                    fill.push(res);
                }
            }
            if examined > max_scan {
                return Err(StoreError::TooMany(format!(
                            "This filter cannot use an index and the directory holds more than {max_scan} {}s; \
                             filter on userName, externalId or id with eq (alone or combined with and), or ask the operator to raise SCIM_MAX_FILTER_SCAN",
                    rt.name
                )));
            }
            match r.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => {
                    let more = total > before + fill.items.len();
                    return Ok(ListPage {
                        total,
                        items: fill.items,
                        more,
                        full: fill.full,
                    });
                }
            }
        }
    }
}

/// How a filter can be served: by key, by index, or only by evaluating it over the tenant's resources.
#[derive(Debug, PartialEq)]
enum Access {
    ById(String),
    ByUnique(String),
    ByExternalId(String),
    Evaluate,
}

/// Find an `eq` on `id`, the unique attribute or `externalId` that every match must satisfy (the filter
/// itself, or one side of an `and`); the full filter is still evaluated on what the key access returns.
fn plan(filter: &Filter, rt: &ResourceType) -> Access {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(v),
        } if path.sub.is_none()
            && path
                .urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(&rt.core.id)) =>
        {
            let n = path.name.as_str();
            if n.eq_ignore_ascii_case("id") {
                Access::ById(v.clone())
            } else if model::unique_attr(rt).is_some_and(|u| u.eq_ignore_ascii_case(n)) {
                Access::ByUnique(v.to_lowercase())
            } else if n.eq_ignore_ascii_case("externalId") {
                Access::ByExternalId(v.clone())
            } else {
                Access::Evaluate
            }
        }
        Filter::And(a, b) => match plan(a, rt) {
            Access::Evaluate => plan(b, rt),
            found => found,
        },
        _ => Access::Evaluate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::AttrPath;
    use crate::schema::user_resource_type;

    fn eq(name: &str, v: &str) -> Filter {
        Filter::Compare {
            path: AttrPath {
                urn: None,
                name: name.into(),
                sub: None,
            },
            op: CompareOp::Eq,
            value: CompValue::Str(v.into()),
        }
    }

    #[test]
    fn plan_pushes_down_eq_on_keys() {
        let rt = user_resource_type();
        assert_eq!(
            plan(&eq("USERNAME", "Ann"), rt),
            Access::ByUnique("ann".into())
        );
        assert_eq!(
            plan(&eq("externalId", "X"), rt),
            Access::ByExternalId("X".into())
        );
        assert_eq!(plan(&eq("id", "abc"), rt), Access::ById("abc".into()));
        assert_eq!(plan(&eq("displayName", "x"), rt), Access::Evaluate);
        let and = Filter::And(Box::new(eq("title", "t")), Box::new(eq("userName", "u")));
        assert_eq!(plan(&and, rt), Access::ByUnique("u".into()));
        let or = Filter::Or(Box::new(eq("userName", "a")), Box::new(eq("userName", "b")));
        assert_eq!(plan(&or, rt), Access::Evaluate);
    }

    #[test]
    fn page_slices_by_start_index_and_count() {
        let r = |id: &str| StoredResource {
            id: id.into(),
            attrs: Default::default(),
            created: String::new(),
            last_modified: String::new(),
            version: 1,
            ..Default::default()
        };
        let q = |start_index, count, after| ListQuery {
            filter: None,
            start_index,
            count,
            max_scan: 10,
            after,
            budget: None,
        };
        let p = q(2, 1, None).window(vec![r("a"), r("b"), r("c")]);
        assert_eq!(p.total, 3);
        assert_eq!(
            p.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert!(p.more);
        assert_eq!(q(5, 10, None).window(vec![r("a")]).items.len(), 0);
        let p = q(1, 5, Some("a")).window(vec![r("a"), r("b"), r("c")]);
        assert_eq!((p.items.len(), p.more), (2, false));
    }

    #[test]
    fn a_budget_ends_the_page_before_the_resource_that_does_not_fit() {
        let r = |id: &str| StoredResource {
            id: id.into(),
            ..Default::default()
        };
        // Each resource costs 10 bytes, plus its id's length: "a" 11, "bb" 12, "ccc" 13.
        let cost = |r: &StoredResource| 10 + r.id.len();
        let q = |max_bytes, start_index| ListQuery {
            filter: None,
            start_index,
            count: 5,
            max_scan: 10,
            after: None,
            budget: Some(crate::store::PageBudget {
                max_bytes,
                cost: &cost,
            }),
        };
        let all = || vec![r("a"), r("bb"), r("ccc")];
        let ids = |p: &ListPage| p.items.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        let p = q(23, 1).window(all());
        assert_eq!(
            (ids(&p), p.more, p.total),
            (vec!["a".to_string(), "bb".to_string()], true, 3)
        );
        let p = q(22, 1).window(all());
        assert_eq!((ids(&p), p.more), (vec!["a".to_string()], true));
        // Continuing at startIndex + itemsPerPage gives the rest.
        let p = q(25, 2).window(all());
        assert_eq!(
            (ids(&p), p.more),
            (vec!["bb".to_string(), "ccc".to_string()], false)
        );
        // A resource that alone does not fit: an empty page, and more to come.
        let p = q(10, 1).window(all());
        assert_eq!((p.items.len(), p.more), (0, true));
    }
}
