import { useSession } from "../session";

export function UserInfoPage() {
  const { user } = useSession();
  return (
    <section className="page">
      <h1>User info</h1>
      <dl className="summary" data-testid="user-info">
        <dt>Username</dt>
        <dd>{user?.username}</dd>
        <dt>Issuer</dt>
        <dd>{user?.iss}</dd>
        <dt>Groups</dt>
        <dd>{user?.groups?.length ? user.groups.join(", ") : "none"}</dd>
      </dl>
    </section>
  );
}
