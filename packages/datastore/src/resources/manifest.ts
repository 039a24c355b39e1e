// Reading a manifest the way Kubernetes does. kubectl and calicoctl read YAML 1.1 (go-yaml v2,
// through sigs.k8s.io/yaml), so `route-reflector: yes` is the boolean true there, stored as the
// label "true"; YAML 1.2 would keep "yes" and a selector `route-reflector == 'true'` would no
// longer match. Base-60 numbers are left out: go-yaml never had them, and they would turn an
// unquoted community such as 64512:20 into a number.
import type { Document } from 'yaml';
import { parseAllDocuments } from 'yaml';

export function readManifest(text: string): Document.Parsed[] {
  const docs = parseAllDocuments(text, {
    version: '1.1',
    customTags: (tags) => tags.filter((t) => typeof t === 'string' || t.format !== 'TIME'),
  });
  // parseAllDocuments returns an EmptyStream (an array too) for an empty text.
  return Array.isArray(docs) ? [...docs] : [];
}
