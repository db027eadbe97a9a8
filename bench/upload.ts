// The seed's azcopy step for the bench: uploads one archive file as a block blob with storage-blob's
// `uploadFile` (default options), through a container SAS URL. Usage: node upload.js <file> <container SAS URL> <blob name>
// The bench bundles this file with esbuild so each upload starts about as fast as a native azcopy would.
import { AnonymousCredential, ContainerClient } from '@azure/storage-blob';

async function main() {
  const [file, sasUrl, name] = process.argv.slice(2);
  if (!file || !sasUrl || !name) throw new Error('usage: upload <file> <container SAS URL> <blob name>');
  const container = new ContainerClient(sasUrl, new AnonymousCredential());
  await container.getBlockBlobClient(name).uploadFile(file);
}

main().catch((err) => {
  console.error(`upload failed: ${String((err as Error)?.message ?? err).split('\n')[0]}`);
  process.exit(1);
});
