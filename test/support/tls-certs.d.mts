/** Paths of one certificate and its private key (PEM files). */
export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface TestCertificates {
  /** The temp directory that holds every file. */
  readonly dir: string;
  /** The test CA: signed `server`, `otherName` and `client`. */
  readonly ca: CertificateFiles;
  /** A CA that signed nothing here. */
  readonly otherCa: CertificateFiles;
  /** Server certificate for DNS:localhost and IP:127.0.0.1. */
  readonly server: CertificateFiles;
  /** Server certificate for DNS:redis.test.internal only. */
  readonly otherName: CertificateFiles;
  /** Client certificate for mutual TLS. */
  readonly client: CertificateFiles;
  /** Deletes the directory. */
  remove(): void;
}

/** Makes a CA, server and client certificates (EC P-256) with openssl in a new temp directory. */
export declare function createTestCertificates(): Promise<TestCertificates>;
