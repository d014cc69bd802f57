//! [`Text`]: an enum stored by its name in a text column.

use std::fmt;
use std::str::FromStr;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A value stored as its name (`pending`): bound from and read into any `T` that names
/// itself (`Into<&'static str>`) and parses back (`FromStr`), such as an enum deriving
/// strum's `IntoStaticStr` and `EnumString`. A stored name that no longer parses is an
/// undecodable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Text<T>(pub T);

impl<T> Text<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T, DB: Database> Type<DB> for Text<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'q, T, DB: Database> Encode<'q, DB> for Text<T>
where
    T: Copy + Into<&'static str>,
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        let name: &'static str = self.0.into();
        name.to_string().encode(buf)
    }
}

impl<'r, T, DB: Database> Decode<'r, DB> for Text<T>
where
    T: FromStr,
    T::Err: fmt::Display,
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let name = <String as Decode<'r, DB>>::decode(value)?;
        name.parse()
            .map(Text)
            .map_err(|error| format!("stored value `{name}`: {error}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::OrgKind;

    #[tokio::test]
    async fn an_enum_is_stored_by_name_and_an_unknown_name_is_an_error() {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect("sqlite::memory:")
            .await
            .unwrap();
        let (kind, name): (Text<OrgKind>, String) = sqlx::query_as("SELECT $1, $1")
            .bind(Text(OrgKind::School))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!((kind.0, name.as_str()), (OrgKind::School, "school"));
        let unknown = sqlx::query_scalar::<_, Text<OrgKind>>("SELECT 'district'")
            .fetch_one(&mut conn)
            .await;
        assert!(matches!(unknown, Err(sqlx::Error::ColumnDecode { .. })));
    }
}
